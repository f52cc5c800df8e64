"""Drawing, shared by every stage that draws: matplotlib set-up and atomic PNG output, the display
frame (radiological convention) and case previews. A leaf: it imports labels, io and file writing only,
never a stage; matplotlib is imported only when a figure is drawn."""

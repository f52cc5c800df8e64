"""Datasets: layout discovery, validation, statistics and the phantom generator."""

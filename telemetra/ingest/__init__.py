"""Ingestion: sources hand normalised messages to the writer."""

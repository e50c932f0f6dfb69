"""Converters from published dataset formats to mmrft's JSONL sample schema."""

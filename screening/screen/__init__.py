"""Screening: materials library, candidates, cell stacks, criteria and ranking."""

"""Clarion: self-hosted email newsletters and action alerts for campaigns."""

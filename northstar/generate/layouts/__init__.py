"""Inverse writers: native contract tables -> the raw tables a real system's sync would hold."""

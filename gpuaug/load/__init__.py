"""CPU side: read npz videos, index their frames."""

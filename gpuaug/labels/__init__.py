"""Backend-neutral geometry and label transforms (plain torch, any device)."""

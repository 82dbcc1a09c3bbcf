"""The input data contract (DESIGN §3): table specs and one pandera model per table."""

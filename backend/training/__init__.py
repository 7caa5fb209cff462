"""Training-side code: the procedural motion corpus, its metrics, and (later) the MDM training loop."""

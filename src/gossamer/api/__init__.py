"""Resource kinds: schemas, validation and manifest I/O."""

"""Neural-network building blocks: attention, masks, positional encodings, layers, KV caches."""

"""Read models: msgspec Structs built straight from query rows, shaped for clients."""

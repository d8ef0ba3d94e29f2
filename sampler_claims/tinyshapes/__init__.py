"""The embedded tiny text-to-image world: procedural captioned shapes, its vocabulary and its checker."""

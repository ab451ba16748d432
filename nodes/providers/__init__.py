"""The provider catalogue: model aliases, chat-model construction, error classes, cooldowns."""

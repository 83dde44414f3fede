"""The peers the hub is measured against: the same `validity` answer, served from memory."""

"""One exception type for every input problem the user can fix.

Scripts catch :class:`KnowledgeMapError` and print its message as one line, so
a bad record costs the user a sentence to read rather than a traceback.
"""


class KnowledgeMapError(Exception):
    """A problem with the user's input or files, worded as one line.

    Messages name the file, the record and the field where they apply, and
    say what to do about it.
    """

    def __str__(self) -> str:
        return " ".join(str(self.args[0]).split()) if self.args else ""


class ConversionError(KnowledgeMapError):
    """OpenVINO cannot run this model: its conversion fails, or disagrees with PyTorch.

    A shard on the OpenVINO engine stops with it (the user sets
    ``model.backend: torch``); the short-text embedder falls back to PyTorch.
    """

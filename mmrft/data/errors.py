"""The one exception the data layer raises for a sample it cannot use."""


class SampleError(Exception):
    """A sample that is malformed or whose media cannot be read.

    `sample_id` names the sample (its `id`, or `file:line` when the line has no usable id);
    `reason` is one line saying what is wrong.
    """

    def __init__(self, sample_id: str, reason: str) -> None:
        super().__init__(sample_id, reason)
        self.sample_id = sample_id
        self.reason = reason

    def __str__(self) -> str:
        return f"sample {self.sample_id}: {self.reason}"

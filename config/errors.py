"""Configuration errors: one line naming the variable and what is wrong with it."""

from pipeline.errors import TspipeError


class ConfigError(TspipeError):
    """A setting from the environment is invalid. str(err) is the line to show the user."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")

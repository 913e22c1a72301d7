"""Configuration errors: one line naming the variable and what is wrong with it."""

from pipeline.errors import TspipeError


class ConfigError(TspipeError):
    """A setting from the environment is invalid. str(err) is the line to show the user."""

    def __init__(self, variable: str, problem: str) -> None:
        from config.masking import mask_secrets  # a problem may quote the value: never print its secrets

        self.variable = variable
        self.problem = problem = mask_secrets(problem)
        super().__init__(f"{variable}: {problem}")

"""What the server runs with, in one place: the environment (`EHDNAS_*`) with the caller's values over it.

`EHDNAS_API_TOKEN` the bearer token (else one generated on the first start and
stored in the user data directory), `EHDNAS_DB` the store (else the library's
default), `EHDNAS_HOST`, `EHDNAS_PORT`, `EHDNAS_WORKERS`, `EHDNAS_JOBS_DIR`,
and the bounds on one job as `EHDNAS_LIMITS__EPOCHS=500` (or
`EHDNAS_LIMITS='{"epochs": 500}'`). An empty variable counts as unset. A bad
value is a `UserError` naming the variable, so `ehdnas serve` says it in one line.
`EHDNAS_DATA_DIRS` (a JSON list) names the folders a spec's paths may lie in.
`EHDNAS_EXECUTOR=ray` runs jobs on Ray, `EHDNAS_RAY__ADDRESS` (and the other
`RaySettings` as `EHDNAS_RAY__<NAME>`) says where and with what.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ehdnas.client.address import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, stored_token_file
from ehdnas.core.errors import UserError
from ehdnas.core.limits import Limits
from ehdnas.core.paths import default_db_url

PREFIX = "EHDNAS_"


def default_jobs_dir(db_url: str) -> Path:
    """Job folders sit beside a SQLite store (job ids are per database); else in the user data directory."""
    if db_url.startswith("sqlite:///") and db_url != "sqlite:///:memory:":
        db_file = Path(db_url.removeprefix("sqlite:///")).expanduser()
        return db_file.with_name(f"{db_file.stem}-jobs")
    from platformdirs import user_data_dir

    return Path(user_data_dir("ehdnas")) / "jobs"


class RaySettings(BaseModel):
    """Where `--executor ray` runs jobs, and what each job reserves there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(
        default=None,
        min_length=1,
        description="The cluster: its head's HOST:PORT or `auto` (the one `ray start` made on this machine); "
        "none: a Ray of the server's own on this machine.",
    )
    cpus: float = Field(default=1.0, gt=0, description="CPUs each job reserves (and runs that many threads on).")
    search_gpus: float = Field(default=0.0, ge=0, description="GPUs a search reserves (0: searches run on CPUs).")


class Settings(BaseSettings):
    """The server's settings; build them with `Settings.load(**overrides)` for a one-line error on a bad value."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_nested_delimiter="__", env_ignore_empty=True, extra="forbid", frozen=True
    )

    api_token: SecretStr | None = Field(default=None, description="The bearer token; None: the stored one.")
    db: str = Field(default_factory=default_db_url, description="The store's SQLAlchemy URL.")
    host: str = Field(default=DEFAULT_HOST, min_length=1)
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    workers: int = Field(default=1, ge=0, description="Worker processes running jobs (0: API only).")
    jobs_dir: Path | None = Field(default=None, description="Where job folders go; None: beside a SQLite store.")
    data_dirs: list[Path] = Field(
        default_factory=list, description="Folders a spec's paths may name (accelerator files, data); none: no path."
    )
    limits: Limits = Field(default_factory=Limits)
    executor: Literal["local", "ray"] = Field(
        default="local", description="Where jobs run: processes of this machine's workers, or tasks on Ray."
    )
    ray: RaySettings = Field(default_factory=RaySettings)

    @field_validator("api_token")
    @classmethod
    def _token_not_blank(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not token.get_secret_value().strip():
            raise ValueError("the API token must not be empty or blank")
        return token

    @field_validator("db")
    @classmethod
    def _db_url(cls, url: str) -> str:
        try:
            make_url(url)
        except ArgumentError:
            raise ValueError(f"not an SQLAlchemy database URL: {url!r}") from None
        return url

    @field_validator("limits")
    @classmethod
    def _limits_positive(cls, limits: Limits) -> Limits:
        try:
            limits.check()
        except UserError as err:
            raise ValueError(str(err)) from None
        return limits

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """The environment's settings with `overrides` over them; a bad value is a one-line `UserError`."""
        try:
            return cls(**overrides)
        except ValidationError as err:
            raise UserError(_one_line(err, set(overrides))) from None
        except SettingsError as err:  # a variable that does not parse, e.g. EHDNAS_LIMITS that is not JSON
            raise UserError(f"server settings: {err}") from None

    def jobs_folder(self) -> Path:
        """The folder for job folders, absolute."""
        return (self.jobs_dir or default_jobs_dir(self.db)).expanduser().resolve()

    def token(self) -> str:
        if self.api_token is None:
            raise ValueError("no API token in these settings: use Settings.with_token()")
        return self.api_token.get_secret_value()

    def with_token(self) -> tuple[Settings, str]:
        """These settings with the token set, and where it came from: the settings, else a file made on first use."""
        if self.api_token is not None:
            return self, f"from ${TOKEN_ENV}"
        path = stored_token_file()
        source = f"stored in {path}"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by this user only
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
            source = f"generated and {source}"
        token = path.read_text().strip()
        if not token:
            raise UserError(f"the API token in {path} is empty: delete the file for a new one, or set ${TOKEN_ENV}")
        return self.model_copy(update={"api_token": SecretStr(token)}), source


def _one_line(err: ValidationError, given: set[str]) -> str:
    """Each problem as `EHDNAS_NAME: message` (or the field's name, for a value the caller gave), never the value."""
    problems = []
    for problem in err.errors(include_url=False, include_input=False):
        loc = [str(part) for part in problem["loc"]]
        if not loc:
            where = "server settings"
        elif loc[0] in given:
            where = f"server setting {'.'.join(loc)}"
        else:
            where = PREFIX + "__".join(part.upper() for part in loc)
        unknown = problem["type"] in ("extra_forbidden", "unexpected_keyword_argument")
        problems.append(f"{where}: {'unknown setting' if unknown else problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)

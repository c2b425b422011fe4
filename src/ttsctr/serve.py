"""``ttsctr-serve``: MLflow's scoring server for a pyfunc model, behind the request guard.

    ttsctr-serve -m models:/ttsctr-synthetic-dcnv2_x8/3 [-h 127.0.0.1] [-p 5000] [-w 1] [-t 60]
                 [--max-body-bytes 16777216] [--max-depth 32]

(also ``python -m ttsctr.serve``). Like ``mlflow models serve -m URI --env-manager local``: the model
is resolved (``models:/``, ``runs:/``, or a path) and downloaded once, then uvicorn serves MLflow's
own scoring app -- built by ``mlflow.pyfunc.scoring_server.init`` (a FastAPI app in MLflow 3.17),
with the same ``/ping``, ``/health``, ``/version`` and ``/invocations`` routes, request parsing,
error format and ``--timeout`` -- wrapped by :class:`ttsctr.http_guard.JsonGuard`, which refuses
bodies above ``--max-body-bytes`` (413), and JSON bodies nested deeper than ``--max-depth`` or
holding ``NaN``/``Infinity`` literals (400) before any JSON parsing. See :mod:`ttsctr.http_guard`.

Each uvicorn worker builds its app with :func:`create_app` from environment variables the CLI
sets (``TTSCTR_SERVE_MODEL_PATH``, ``TTSCTR_SERVE_MAX_BODY_BYTES``, ``TTSCTR_SERVE_MAX_DEPTH``),
the way MLflow's ``scoring_server.app`` module reads its model path.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Sequence

from ttsctr.http_guard import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, JsonGuard

ENV_MODEL_PATH = "TTSCTR_SERVE_MODEL_PATH"
ENV_MAX_BODY_BYTES = "TTSCTR_SERVE_MAX_BODY_BYTES"
ENV_MAX_DEPTH = "TTSCTR_SERVE_MAX_DEPTH"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_TIMEOUT_S = 60

_logger = logging.getLogger("ttsctr.serve")


def create_app() -> Any:
    """MLflow's scoring app for the model at ``$TTSCTR_SERVE_MODEL_PATH``, behind :class:`JsonGuard`."""
    from mlflow.pyfunc import scoring_server

    model = StrictColumns(scoring_server.load_model_with_mlflow_config(os.environ[ENV_MODEL_PATH]))
    return JsonGuard(scoring_server.init(model),
                     max_body_bytes=int(os.environ.get(ENV_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES)),
                     max_depth=int(os.environ.get(ENV_MAX_DEPTH, DEFAULT_MAX_DEPTH)))


class StrictColumns:
    """A pyfunc model that refuses columns its signature does not name, or names twice (HTTP 400).

    MLflow's schema enforcement drops undeclared columns with a log warning before the model
    sees them (a request with a misspelt field would be answered as if the field were missing)
    and fails on repeated ones with an unrelated message. Everything else is the wrapped
    model's (``__getattr__``).
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        schema = model.metadata.get_input_schema()
        self._names = list(schema.input_names()) if schema is not None and schema.has_input_names() else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        if self._names is not None and isinstance(data, pd.DataFrame):
            columns = [str(c) for c in data.columns]
            extra = [c for c in columns if c not in self._names]
            repeated = sorted({c for c in columns if columns.count(c) > 1})
            if extra or repeated:
                found = "; ".join(part for part in (f"unexpected columns {extra}" if extra else "",
                                                    f"duplicated columns {repeated}" if repeated else "") if part)
                raise MlflowException(f"{found}; expected exactly the raw fields {self._names}, each once",
                                      error_code=INVALID_PARAMETER_VALUE)
        return self._model.predict(data, params=params)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ttsctr-serve", add_help=False,  # -h is the host, as in `mlflow models serve`
        description="Serve an MLflow pyfunc model with MLflow's scoring app behind a request guard: bodies above "
                    "--max-body-bytes get 413, JSON nested deeper than --max-depth or holding NaN/Infinity "
                    "literals gets 400, before any JSON parsing.")
    ap.add_argument("--help", action="help", help="show this message and exit")
    ap.add_argument("-m", "--model-uri", required=True, metavar="URI",
                    help="the model: models:/<name>/<version>, runs:/<run>/<path>, or a local path")
    ap.add_argument("-h", "--host", default=DEFAULT_HOST, help=f"interface to bind (default: {DEFAULT_HOST})")
    ap.add_argument("-p", "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT})")
    ap.add_argument("-w", "--workers", type=_positive, default=int(os.environ.get("MLFLOW_MODELS_WORKERS", 1)),
                    help="uvicorn worker processes, each with its own copy of the model (default: 1)")
    ap.add_argument("-t", "--timeout", type=_positive, default=None,
                    help="seconds to serve one request before answering 504, as mlflow models serve "
                         f"(default: $MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT or {DEFAULT_TIMEOUT_S})")
    ap.add_argument("--max-body-bytes", type=_positive, default=DEFAULT_MAX_BODY_BYTES,
                    help=f"largest request body in bytes; larger bodies get 413 (default: {DEFAULT_MAX_BODY_BYTES}, "
                         "16 MiB, about 26,000 raw rows as JSON records)")
    ap.add_argument("--max-depth", type=_positive, default=DEFAULT_MAX_DEPTH,
                    help=f"deepest nesting of JSON arrays/objects; deeper bodies get 400 (default: {DEFAULT_MAX_DEPTH}; "
                         "dataframe_records needs 3, dataframe_split 4)")
    ap.add_argument("--env-manager", choices=["local"], default="local",
                    help="accepted for symmetry with mlflow models serve: the model is always served in the "
                         "current environment")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn
    from mlflow.artifacts import download_artifacts
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT

    local_path = download_artifacts(artifact_uri=args.model_uri)
    os.environ[ENV_MODEL_PATH] = local_path
    os.environ[ENV_MAX_BODY_BYTES] = str(args.max_body_bytes)
    os.environ[ENV_MAX_DEPTH] = str(args.max_depth)
    timeout = args.timeout or MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get() or DEFAULT_TIMEOUT_S
    os.environ[MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.name] = str(timeout)
    _logger.info("serving %s (%s) on http://%s:%d with %d worker(s): --max-body-bytes %d, --max-depth %d, "
                 "--timeout %ss", args.model_uri, local_path, args.host, args.port, args.workers,
                 args.max_body_bytes, args.max_depth, timeout)
    uvicorn.run("ttsctr.serve:create_app", factory=True, host=args.host, port=args.port, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

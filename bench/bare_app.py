"""The bare ceiling for HTTP single: one FastAPI POST route that parses JSON and answers 201 JSON.

No database, no authentication, no validation: whatever Telemetra does beyond this is its own cost.
Served exactly as `telemetra serve` serves its app (telemetra/cli.py): ``uvicorn.run`` in-process, one
worker, loop and http implementation left at "auto" (uvloop and httptools when installed), uvicorn's
logging config off, access log off.

    python bench/bare_app.py --port 8001
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
_received = 0


@app.post("/api/v1/devices/telemetry", status_code=201)
async def telemetry(request: Request) -> JSONResponse:
    global _received
    doc = await request.json()
    _received += 1
    return JSONResponse({"message": "ok", "telemetry_id": _received, "keys": len(doc.get("data", {}))}, status_code=201)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "healthy"}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()

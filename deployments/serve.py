"""`python -m deployments.serve`: serve the flows, the same command as `ocr-pipeline serve`."""

from flows.serving import serve

if __name__ == "__main__":
    serve(prog_name="python -m deployments.serve")

"""Liveness probe, open to everyone."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/health")
def read_health() -> dict[str, str]:
    """Report that the API process is up."""
    return {"status": "ok"}

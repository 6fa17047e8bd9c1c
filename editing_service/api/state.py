"""What the routes share in one server process: configuration, database, job worker, predictor."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from editing_service.api.predictor import AdaptiveBatcher, ModelCache, settle_heap
from editing_service.config import ServiceConfig
from editing_service.jobs import JobWorker
from editing_service.pipeline import resolve_device
from editing_service.settings import ModelSettings
from editing_service.store import Database, JobQuota

NOT_STARTED = "The service is still starting."


@dataclass
class ServiceState:
    config: ServiceConfig
    db: Database
    batcher: AdaptiveBatcher
    worker: JobWorker | None
    quota: JobQuota

    @classmethod
    def start(cls, config: ServiceConfig) -> ServiceState:
        config.home.mkdir(parents=True, exist_ok=True)
        db = Database(config.database_url)
        db.create_all()
        device = resolve_device(config.device)
        cache = ModelCache(config.loaded_models, device,
                           device_map=ModelSettings.model_validate(config.model_placement()).placement())
        batcher = AdaptiveBatcher(cache, max_batch=config.predict_max_batch, max_latency_ms=config.predict_max_latency_ms,
                                  max_tokens=config.predict_max_tokens, forward_texts=config.forward_texts(device.type))
        worker = JobWorker(db, config).start() if config.run_worker else None
        settle_heap()
        quota = JobQuota(config.jobs_per_principal, config.job_window_seconds)
        return cls(config=config, db=db, batcher=batcher, worker=worker, quota=quota)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.batcher.close()
        self.db.dispose()


def get_state(request: Request) -> ServiceState:
    """FastAPI dependency: the process's state (set when the BentoML service starts)."""
    state = getattr(request.app.state, "service", None)
    if state is None:
        raise RuntimeError(NOT_STARTED)
    return state


def get_principal(request: Request) -> str:
    """FastAPI dependency: the name of the principal whose token authenticated this request."""
    principal = request.scope.get("state", {}).get("principal")
    return getattr(principal, "name", "anonymous")

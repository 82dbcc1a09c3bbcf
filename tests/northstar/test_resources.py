"""open_resources: the settings' S3 endpoint, retries and timeout reach the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from northstar.config import Settings
from northstar.resources import open_resources
from northstar.sources import S3Source


def test_s3_retries_and_timeout_come_from_the_settings(s3_server: Any, tmp_path: Path) -> None:
    # one small file under s3://resources-test/exports; 7.5 s and 1 retry set, not the defaults
    folder = tmp_path / "company"
    (folder / "crm").mkdir(parents=True)
    (folder / "crm" / "accounts.csv").write_text("account_id\nA1\n")
    uri = s3_server.upload_folder(folder, "resources-test", "exports")
    settings = Settings(
        source=uri,
        store=f"sqlite:///{tmp_path / 'store.db'}",
        s3_endpoint_url=s3_server.endpoint,
        extract_retries=1,
        s3_timeout_seconds=7.5,
    )
    resources = open_resources(settings)
    resources.store.dispose()
    source = resources.source
    assert isinstance(source, S3Source)
    config = source.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (7.5, 7.5)
    assert config.retries["total_max_attempts"] == 2  # the first try and one retry
    assert source.storage_options["timeout"] == "7.5s"
    assert source.storage_options["max_retries"] == 1
    assert source.has("crm/accounts")

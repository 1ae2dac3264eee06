# ruff: noqa: F811
"""Console tests: Debian's headless chromium, driven by Selenium, against the session stack (in-process)."""

import shutil

import pytest

from tests.integration.conftest import (  # noqa: F401  (session fixtures re-exported for this directory)
    ROLE,
    SKLEARN_IMAGE,
    bucket,
    s3,
    sm,
    smr,
    stack,
    stack_url,
    unique,
)
from tests.pipelines.conftest import code_uri  # noqa: F401

pytestmark = pytest.mark.capability("chromium")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/console/" in str(item.fspath):
            item.add_marker(pytest.mark.capability("chromium"))


def chromium_driver(width=1280, height=900):
    """A headless Debian chromium under Selenium (the system chromedriver; Selenium Manager never downloads)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "chromedriver"))


@pytest.fixture(scope="session")
def browser():
    driver = chromium_driver()
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def console(stack_url):
    return f"{stack_url}/console"

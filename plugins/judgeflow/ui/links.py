"""Deep links into the view, for what points people at it from outside (the run report, later alerts).

The view is mounted on the api-server under :data:`URL_PREFIX`; its pages take ``rubric``, ``version``
and ``segment`` in the query string, so a link opens exactly the rubric version and segment it is about.
Pure string work: no Airflow, no FastAPI.
"""

from __future__ import annotations

from urllib.parse import urlencode

URL_PREFIX = "/judgeflow"


def view_url(base_url: str, page: str = "", **params: str | None) -> str:
    """``{base_url}/judgeflow/{page}?...`` with the parameters that are set."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{base_url.rstrip('/')}{URL_PREFIX}/{page}" + (f"?{query}" if query else "")


def view_links(base_url: str, *, rubric: str, version: str, segment: str | None) -> list[tuple[str, str]]:
    """``(label, url)``: the overview of this rubric version and, with a segment, its lowest-scoring responses."""
    links = [("quality at a glance", view_url(base_url, rubric=rubric, version=version))]
    if segment:
        links.append(
            (
                f"lowest-scoring responses in {segment}",
                view_url(base_url, "responses", rubric=rubric, version=version, segment=segment),
            )
        )
    return links

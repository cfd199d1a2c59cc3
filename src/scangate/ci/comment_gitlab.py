"""The GitLab side of the sticky comment: which merge request, which token, which endpoints.

Notes API (https://docs.gitlab.com/api/notes/): `GET /projects/:id/merge_requests/:iid/notes`
lists a merge request's notes (offset pagination: `Link` and `X-Next-Page` headers), `POST` on
the same path creates one, `PUT /projects/:id/merge_requests/:iid/notes/:note_id` edits one.
"""

from __future__ import annotations

from collections.abc import Mapping

from scangate.ci.comment_body import GITLAB_MAX_CHARS
from scangate.ci.comment_thread import CommentError, Skip, Thread

# NOTE: the CI/CD job token cannot write notes. GitLab's list of what `CI_JOB_TOKEN` may reach
# ("Job token access", https://docs.gitlab.com/ci/jobs/ci_job_token/) has no Notes or merge
# request endpoint, and allowing it is an open request (gitlab-org/gitlab#464591 "CI_JOB_TOKEN
# should be allowed to comment on merge requests"; #545150 for the merge request endpoints).
# So `GITLAB_TOKEN` (a project access token with `api` scope) comes first; with only the job
# token scangate still tries, in case an instance allows it, and a refusal names GITLAB_TOKEN.

TOKEN_ADVICE = (
    "set a masked CI/CD variable GITLAB_TOKEN holding a project access token with the `api` "
    "scope and at least the Reporter role"
)
NO_TOKEN_HINT = f"{TOKEN_ADVICE}; the gate is unchanged"
JOB_TOKEN_DENIED_HINT = (
    f"CI_JOB_TOKEN may not write merge request notes; {TOKEN_ADVICE}; the gate is unchanged"
)
DENIED_HINT = (
    "GITLAB_TOKEN needs the `api` scope and at least the Reporter role in the project; "
    "the gate is unchanged"
)
NOT_FOUND_HINT = (
    "check that the token's user can see the project and its merge request (a token with "
    "`api` scope, Reporter or above); the gate is unchanged"
)


def gitlab_thread(env: Mapping[str, str]) -> Thread | Skip:
    """The merge request of this merge-request pipeline, or `Skip` when there is none.

    Raises `CommentError` when the API URL, the project or every token is missing.
    """
    iid = env.get("CI_MERGE_REQUEST_IID", "").strip()
    if not iid:
        return Skip("no merge request to comment on (not a merge request pipeline)")
    if not iid.isdigit():
        raise CommentError(
            f"CI_MERGE_REQUEST_IID is {iid!r}, not a number",
            hint="run in a merge request pipeline, which sets it; the gate is unchanged",
        )
    api_url = env.get("CI_API_V4_URL", "").strip()
    project = env.get("CI_PROJECT_ID", "").strip()
    if not api_url or not project.isdigit():
        raise CommentError(
            "CI_API_V4_URL or CI_PROJECT_ID is not set",
            hint="run inside GitLab CI, which sets both; the gate is unchanged",
        )
    header, token, denied = _token(env)
    base = f"projects/{project}/merge_requests/{iid}/notes"
    return Thread(
        forge="GitLab",
        what=f"merge request !{iid}",
        api_url=api_url,
        list_path=base,
        list_params={"order_by": "created_at", "sort": "asc"},
        create_path=base,
        item_path=f"{base}/{{id}}",
        edit_method="PUT",
        auth_header=header,
        token=token,
        max_chars=GITLAB_MAX_CHARS,
        denied_hint=denied,
        not_found_hint=NOT_FOUND_HINT,
        run_url=env.get("CI_JOB_URL", "") or env.get("CI_PIPELINE_URL", ""),
    )


def _token(env: Mapping[str, str]) -> tuple[str, str, str]:
    """(header, token, what a refusal means): `GITLAB_TOKEN` first, else `CI_JOB_TOKEN`."""
    token = env.get("GITLAB_TOKEN", "").strip()
    if token:
        return "PRIVATE-TOKEN", token, DENIED_HINT
    job_token = env.get("CI_JOB_TOKEN", "").strip()
    if job_token:
        return "JOB-TOKEN", job_token, JOB_TOKEN_DENIED_HINT
    raise CommentError("no GITLAB_TOKEN (and no CI_JOB_TOKEN)", hint=NO_TOKEN_HINT)

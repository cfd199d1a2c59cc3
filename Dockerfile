# scangate container image: the GitHub Docker action (action.yml), GitLab and Jenkins jobs, and
# `docker run` anywhere (README.md "The container image").
#
#   docker build -t scangate .
#   docker run --rm -v "$PWD:/work" -w /work -e CYBERORIGEN_API_KEY scangate run
#
# Stage 1 builds the wheel; stage 2 installs it into a clean slim image, so no build tool,
# source tree or pip cache is left in the result. No WORKDIR: GitHub mounts the workspace and
# sets the working directory itself (https://docs.github.com/en/actions/reference/workflows-and-actions/dockerfile-support;
# docs/formats.md §4.3); GitLab and Jenkins set their own too.

FROM python:3.12-slim-bookworm AS build
COPY pyproject.toml README.md /src/
COPY src/ /src/src/
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist /src

FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /dist/ /tmp/dist/
# scangate-post: the GitHub action's post step (action.yml `post-entrypoint`). The runner gives
# the post container the main step's `args` as well, so it ignores its arguments
# (https://github.com/actions/runner/blob/main/src/Runner.Worker/Handlers/ContainerActionHandler.cs).
RUN python -m pip install --no-cache-dir /tmp/dist/*.whl \
    && rm -rf /tmp/dist \
    && printf '#!/bin/sh\nexec scangate cleanup\n' > /usr/local/bin/scangate-post \
    && chmod 0755 /usr/local/bin/scangate-post \
    && groupadd --gid 1001 scangate \
    && useradd --no-log-init --uid 1001 --gid 1001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin scangate
# A non-root user (docs/design.md §7) whose uid is that of the GitHub-hosted runner's `runner`
# account and of the official actions-runner image (1001). GitHub's docs say a Docker action
# must run as root (docs/formats.md §4.3, from the page above) because the workspace and the GITHUB_OUTPUT and
# GITHUB_STEP_SUMMARY files belong to the runner's user, and action.yml cannot pass
# `docker run --user`. Owning uid 1001 meets both: the action can write there on hosted
# runners, files it leaves in the workspace belong to the runner's user (not root, which
# self-hosted cleanup trips on), and GitLab (world-writable build directory by default) and
# Jenkins (`docker run -u` with the agent's uid) run it unprivileged. On a self-hosted runner
# whose workspace belongs to another user, run the image with `--user` set to that user instead
# of using the action.
USER 1001:1001
# Exec form: scangate is PID 1 and gets SIGINT/SIGTERM itself, which it handles by cancelling
# the scan and writing partial reports (README.md "Waiting, faults and cancellation").
ENTRYPOINT ["scangate"]
CMD ["--help"]

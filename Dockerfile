FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml package.json package-lock.json ./
COPY . .
RUN pip install --no-cache-dir . && npm ci --no-audit --no-fund && python scripts/vendor_static.py
ENV PYTHONUNBUFFERED=1
EXPOSE 8000

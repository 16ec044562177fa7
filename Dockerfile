# One image for every taskstream process; the command picks the process.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY projections projections
COPY infra infra
COPY services services
COPY clients/python clients/python
RUN pip install --no-cache-dir ./clients/python . && pip install --no-cache-dir --no-deps 'fastapi-swagger==0.4.64'
USER nobody
EXPOSE 8080
CMD ["taskstream", "dev", "--host", "0.0.0.0", "--port", "8080"]

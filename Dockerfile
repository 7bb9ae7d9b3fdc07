# The crmledger image: one image, every role (`crmledger serve --only ROLE`).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY crmledger ./crmledger
COPY domain ./domain
COPY projections ./projections
COPY api ./api
COPY consumers ./consumers
COPY infra ./infra
RUN pip install --no-cache-dir . && useradd --system crmledger
USER crmledger
ENV CRMLEDGER_HOME=/tmp/crmledger
ENTRYPOINT ["crmledger"]
CMD ["serve"]

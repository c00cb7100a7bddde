// Package checks verifies the deployment files (Dockerfile, docker-compose.yml, the Helm
// chart, Prometheus rules and the Grafana dashboard) without a container engine or a cluster.
package checks

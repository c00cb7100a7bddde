package mediator

import "github.com/labstack/echo/v4"

// dlqRoutes mounts the dead-letter API under /admin/v1/dlq.
func (s *Service) dlqRoutes(admin *echo.Group) {}

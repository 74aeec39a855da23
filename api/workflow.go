package api

// workflowRoutes are the endpoints of the release workflows: environment
// clone, rename and delete, approvals.
func (s *Server) workflowRoutes() []route {
	return nil
}

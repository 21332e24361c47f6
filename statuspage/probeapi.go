package statuspage

func (s *Server) registerProbeAPI() {}

package statuspage

func (s *Server) registerSnapshotAPI() {}

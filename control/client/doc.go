// Package client is a Go client for faultline's control API (see package
// api for the endpoints and wire types). Every call takes a context; every
// failure the server reports comes back as an *api.Error, to be matched
// with errors.Is against api.ErrNotFound, api.ErrNameTaken and the other
// sentinels.
//
// Over HTTP:
//
//	c := client.New("http://127.0.0.1:8470", client.WithToken(os.Getenv("FAULTLINE_TOKEN")))
//	p, err := c.CreateProxy(ctx, api.ProxySpec{Name: "redis", Upstream: "127.0.0.1:6379"})
//	if err != nil {
//		return err
//	}
//	// Point the code under test at p.Listen, then:
//	f, err := c.AddFault(ctx, "redis", faults.Latency(150*time.Millisecond, 0))
//	...
//	err = c.RemoveFault(ctx, "redis", f.Name)
//
// Events are read with a cursor, so none is missed or read twice:
//
//	q := client.EventsQuery{Proxy: "redis", Timeout: 30 * time.Second}
//	for {
//		evs, err := c.Events(ctx, q)
//		if err != nil {
//			return err
//		}
//		for _, e := range evs.Events {
//			fmt.Println(e.Event)
//		}
//		q.After = evs.Next
//	}
//
// Over a websocket, a Session toggles faults with one round trip each and
// streams events:
//
//	s, err := c.Dial(ctx)
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	sub, err := s.Subscribe(ctx, "redis", []string{"fault-fired"}, 0)
//	...
//	f, err := s.Inject(ctx, "redis", faults.Reset(faults.ToClient)) // in force once it returns
//	...
//	e, err := sub.Next(ctx)
package client

package trace

// subscriber is one live-feed reader.
type subscriber struct {
	ch chan Summary
}

// maxFeedBuffer bounds one subscriber's buffer.
const maxFeedBuffer = 1 << 16

// Subscribe returns a feed of the summaries of traces added from now on.
// The channel holds up to buffer summaries (at least 1); when the reader
// falls behind, the oldest buffered summaries are dropped, never Add
// blocked, and Stats.FeedDropped counts them. cancel ends the feed and
// closes the channel; it is safe to call more than once. Close ends every
// feed.
func (s *Store) Subscribe(buffer int) (<-chan Summary, func()) {
	buffer = min(max(buffer, 1), maxFeedBuffer)
	sub := &subscriber{ch: make(chan Summary, buffer)}
	s.submu.Lock()
	defer s.submu.Unlock()
	if s.subsClosed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	s.subs[sub] = struct{}{}
	cancel := func() {
		s.submu.Lock()
		defer s.submu.Unlock()
		if _, ok := s.subs[sub]; ok {
			delete(s.subs, sub)
			close(sub.ch)
		}
	}
	return sub.ch, cancel
}

// publish hands sum to every subscriber without waiting. Holding submu
// keeps cancel from closing a channel mid-send.
func (s *Store) publish(sum Summary) {
	s.submu.Lock()
	defer s.submu.Unlock()
	for sub := range s.subs {
		for {
			select {
			case sub.ch <- sum:
			default:
				// Full: make room by dropping the oldest, then try again.
				// The reader may take one meanwhile, so this can loop,
				// but only while it is making progress.
				select {
				case <-sub.ch:
					s.feedDropped.Add(1)
				default:
				}
				continue
			}
			break
		}
	}
}

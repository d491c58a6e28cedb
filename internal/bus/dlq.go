package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderReplayOf marks a message re-driven from the dead-letter stream:
// the dead letter's sequence there.
const HeaderReplayOf = "Hmp-Replay-Of"

// DeadLetterInfo is one message of the dead-letter stream, as an operator
// sees it.
type DeadLetterInfo struct {
	// Seq is the message's sequence in the dead-letter stream (what
	// ReplayDeadLetter takes).
	Seq uint64 `json:"seq"`
	// Time is when it was dead-lettered.
	Time time.Time `json:"time"`
	// Consumer gave up on it, for Reason, after Deliveries deliveries.
	Consumer   string `json:"consumer"`
	Reason     string `json:"reason"`
	Deliveries uint64 `json:"deliveries"`
	// Subject and StreamSeq are where it was in the events stream.
	Subject   string `json:"subject"`
	StreamSeq uint64 `json:"streamSeq"`
	// Data is the message body, unchanged.
	Data []byte `json:"data"`
}

// DeadLetters returns every message of the dead-letter stream, oldest
// first.
func (b *Bus) DeadLetters(ctx context.Context) ([]DeadLetterInfo, error) {
	s, err := b.js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream info: %w", err)
	}
	var out []DeadLetterInfo
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed (deleted) already
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: %w", seq, err)
		}
		out = append(out, deadLetterInfo(m))
	}
	return out, nil
}

func deadLetterInfo(m *jetstream.RawStreamMsg) DeadLetterInfo {
	d := DeadLetterInfo{Seq: m.Sequence, Time: m.Time, Data: m.Data}
	if m.Header != nil {
		d.Consumer = m.Header.Get(HeaderConsumer)
		d.Reason = m.Header.Get(HeaderReason)
		d.Subject = m.Header.Get(HeaderSubject)
		d.StreamSeq, _ = strconv.ParseUint(m.Header.Get(HeaderStreamSeq), 10, 64)
		d.Deliveries, _ = strconv.ParseUint(m.Header.Get(HeaderDeliveries), 10, 64)
	}
	return d
}

// ReplayDeadLetter re-drives the dead letter of sequence seq into the
// events stream, on its original subject and with its body unchanged, and
// then removes it from the dead-letter stream. Consumers see it as a new
// message (a new stream sequence); their exactly-once record makes an
// event that had taken effect change nothing. A crash between the two
// steps leaves the dead letter in place: replaying it again is harmless
// for the same reason. ErrNotFound-like errors name a seq not in the
// stream.
func (b *Bus) ReplayDeadLetter(ctx context.Context, seq uint64) (DeadLetterInfo, error) {
	s, err := b.js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return DeadLetterInfo{}, fmt.Errorf("dead-letter stream: %w", err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return DeadLetterInfo{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	d := deadLetterInfo(m)
	if d.Subject == "" {
		return d, fmt.Errorf("dead letter %d carries no %s header: nowhere to replay it", seq, HeaderSubject)
	}
	out := nats.NewMsg(d.Subject)
	out.Data = d.Data
	out.Header.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	// A message id of its own: the original's id may still sit in the
	// stream's de-duplication window, which would drop the replay.
	if _, err := b.js.PublishMsg(ctx, out, jetstream.WithMsgID("dlq-replay-"+strconv.FormatUint(seq, 10)+"-"+strconv.FormatInt(m.Time.UnixNano(), 10))); err != nil {
		return d, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return d, fmt.Errorf("remove replayed dead letter %d: %w", seq, err)
	}
	return d, nil
}

// ReplayDeadLetters replays every dead letter (see ReplayDeadLetter) and
// returns those it replayed.
func (b *Bus) ReplayDeadLetters(ctx context.Context) ([]DeadLetterInfo, error) {
	all, err := b.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetterInfo, 0, len(all))
	for _, d := range all {
		r, err := b.ReplayDeadLetter(ctx, d.Seq)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// StreamInfo returns the state and settings of a stream.
func (b *Bus) StreamInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", stream, err)
	}
	return info, nil
}

// StreamMsg returns the message of a stream at sequence seq.
func (b *Bus) StreamMsg(ctx context.Context, stream string, seq uint64) (*jetstream.RawStreamMsg, error) {
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("stream %s message %d: %w", stream, seq, err)
	}
	return m, nil
}

// ConsumerInfo returns the state of a durable consumer of a stream.
func (b *Bus) ConsumerInfo(ctx context.Context, stream, durable string) (*jetstream.ConsumerInfo, error) {
	c, err := b.js.Consumer(ctx, stream, durable)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer %s info: %w", durable, err)
	}
	return info, nil
}

// DeleteConsumer deletes a durable consumer of a stream: its position is
// lost, and a consumer created again under its name starts over.
func (b *Bus) DeleteConsumer(ctx context.Context, stream, durable string) error {
	if err := b.js.DeleteConsumer(ctx, stream, durable); err != nil {
		return fmt.Errorf("delete consumer %s: %w", durable, err)
	}
	return nil
}

// PublishRaw stores data on subject as it is, with msgID as its message
// id when not empty, and returns its stream sequence. For tools and tests
// (injecting or copying messages); events go through PublishEvents.
func (b *Bus) PublishRaw(ctx context.Context, subject string, data []byte, msgID string) (uint64, error) {
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data}, opts...)
	if err != nil {
		return 0, fmt.Errorf("publish to %s: %w", subject, err)
	}
	if ack.Duplicate {
		return ack.Sequence, fmt.Errorf("publish to %s: message id %s is a duplicate", subject, msgID)
	}
	return ack.Sequence, nil
}

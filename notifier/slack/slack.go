// Package slack posts alert transitions to Slack through
// github.com/slack-go/slack: with a bot token, one Block Kit message per alert
// (chat.postMessage) updated in place when it resolves (chat.update) with the
// update in its thread; with only an incoming webhook, one message per
// transition.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/slack-go/slack"
)

// Slack's limits.
const (
	MaxBlocks      = 50
	MaxSectionText = 3000
)

// Config is one Slack receiver: a bot token and channel, or a webhook.
type Config struct {
	Token   config.Secret `yaml:"token"`
	Channel string        `yaml:"channel"`
	// APIURL is Slack's Web API base (tests, proxies).
	APIURL     string        `yaml:"api_url"`
	WebhookURL config.Secret `yaml:"webhook_url"`
	Timeout    time.Duration `yaml:"timeout"`
}

// Validate sets defaults and checks the section at key.
func (c *Config) Validate(p *config.Problems, key string) {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.APIURL == "" {
		c.APIURL = slack.APIURL
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	switch {
	case c.Token != "" && c.WebhookURL != "":
		p.Add(key, "give token and channel, or webhook_url, not both")
	case c.Token != "":
		if !strings.HasPrefix(c.Token.Value(), "xoxb-") {
			p.Add(key+".token", "is not a bot token (xoxb-...)")
		}
		if c.Channel == "" {
			p.Add(key+".channel", "is required with a token")
		}
	case c.WebhookURL != "":
		if u, err := url.Parse(c.WebhookURL.Value()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.Add(key+".webhook_url", "is not an http(s) URL")
		}
	default:
		p.Add(key, "needs token and channel, or webhook_url")
	}
}

// Notifier is a Slack receiver.
type Notifier struct {
	cfg    Config
	api    *slack.Client
	client *http.Client
}

// New builds a receiver from a validated config.
func New(c Config) *Notifier {
	hc := &http.Client{Timeout: c.Timeout}
	n := &Notifier{cfg: c, client: hc}
	if c.Token != "" {
		n.api = slack.New(c.Token.Value(), slack.OptionAPIURL(c.APIURL), slack.OptionHTTPClient(hc))
	}
	return n
}

// Notify posts (firing) or updates in place and replies in the thread
// (resolved). The ref is "channel|ts" of the alert's message.
func (n *Notifier) Notify(ctx context.Context, m notifier.Message) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	blocks := Blocks(m)
	text := fallback(m)
	if n.api == nil {
		err := slack.PostWebhookCustomHTTPContext(ctx, n.cfg.WebhookURL.Value(), n.client,
			&slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}})
		return "", n.verdict(err)
	}
	if m.Event != model.TransitionFiring && m.Ref != "" {
		ch, ts, _ := strings.Cut(m.Ref, "|")
		if _, _, _, err := n.api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false)); err != nil {
			return "", n.verdict(err)
		}
		note := fmt.Sprintf("Resolved at %s", m.Alert.ResolvedAt.UTC().Format("15:04 MST"))
		if m.Event == model.TransitionAcknowledged {
			note = fmt.Sprintf("Acknowledged by %s at %s", notifier.Mrkdwn(m.Alert.AckedBy), m.Alert.AckedAt.UTC().Format("15:04 MST"))
		}
		_, _, err := n.api.PostMessageContext(ctx, ch, slack.MsgOptionTS(ts), slack.MsgOptionText(note, false))
		return m.Ref, n.verdict(err)
	}
	ch, ts, err := n.api.PostMessageContext(ctx, n.cfg.Channel, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
	if err != nil {
		return "", n.verdict(err)
	}
	return ch + "|" + ts, nil
}

// verdict classifies slack-go's errors: rate limits and server errors are
// retried; Slack's own refusals (invalid_auth, channel_not_found) are not.
func (n *Notifier) verdict(err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	var out *notifier.Error
	switch {
	case errors.As(err, &rl):
		out = &notifier.Error{Retry: true, RetryAfter: rl.RetryAfter, Err: fmt.Errorf("slack: %w", err)}
	case errors.As(err, &sc):
		out = notifier.Classify(sc.Code, "", fmt.Errorf("slack: %w", err))
	case errors.As(err, &se):
		out = &notifier.Error{Retry: se.Err == "ratelimited" || se.Err == "internal_error" || se.Err == "fatal_error",
			Err: fmt.Errorf("slack: %s", se.Err)}
	default:
		out = notifier.Transport(fmt.Errorf("slack: %w", err))
	}
	return notifier.Scrub(out, n.cfg.Token.Value(), n.cfg.WebhookURL.Value())
}

// fallback is the notification text (mrkdwn): outside strings escaped.
func fallback(m notifier.Message) string {
	return notifier.ClipMrkdwn(fmt.Sprintf("[%s] %s", status(m), notifier.Mrkdwn(m.GroupSummary())), 3000)
}

// status is the event in capitals, with who acknowledged it (escaped mrkdwn).
func status(m notifier.Message) string {
	switch m.Event {
	case model.TransitionResolved:
		return "RESOLVED"
	case model.TransitionAcknowledged:
		if m.Alert.AckedBy == "" {
			return "ACKNOWLEDGED"
		}
		return "ACKNOWLEDGED by " + notifier.Mrkdwn(m.Alert.AckedBy)
	}
	return strings.ToUpper(notifier.Mrkdwn(string(m.Alert.Severity)))
}

// Blocks is the alert as Block Kit, within Slack's limits.
func Blocks(m notifier.Message) []slack.Block {
	a := m.Alert
	icon := map[model.Severity]string{model.SeverityCritical: ":rotating_light:", model.SeverityWarning: ":warning:", model.SeverityInfo: ":information_source:"}[a.Severity]
	switch m.Event {
	case model.TransitionResolved:
		icon = ":white_check_mark:"
	case model.TransitionAcknowledged:
		icon = ":eyes:"
	}
	esc := notifier.Mrkdwn
	title := fmt.Sprintf("%s *%s* %s — %s/%s", icon, status(m), esc(a.Rule), esc(a.Tenant), esc(a.Job))
	if len(m.Group) > 1 {
		title = fmt.Sprintf("%s *%s* %d alerts — %s", icon, status(m), len(m.Group), esc(m.GroupKey))
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, notifier.ClipMrkdwn(title, MaxSectionText), false, false), nil, nil),
	}
	members := m.Group
	if len(members) <= 1 {
		members = []model.Alert{a}
	}
	// One section per alert, keeping room for the title, the "more" line and the context.
	for i, g := range members {
		if i == MaxBlocks-4 {
			blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType,
				fmt.Sprintf("and %d more", len(members)-i), false, false), nil, nil))
			break
		}
		// plain_text: Slack reads no markup in it (no mentions, no links).
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, notifier.Clip(g.Summary, MaxSectionText), false, false), nil, nil))
	}
	var ctx []slack.MixedElement
	if a.RunID != "" {
		ctx = append(ctx, slack.NewTextBlockObject(slack.MarkdownType, "run `"+notifier.MrkdwnCode(notifier.Clip(a.RunID, 200))+"`", false, false))
	}
	if !a.FiredAt.IsZero() {
		ctx = append(ctx, slack.NewTextBlockObject(slack.MarkdownType, "fired "+a.FiredAt.UTC().Format("2006-01-02 15:04 MST"), false, false))
	}
	if _, ok := notifier.WebURL(m.DashboardURL); ok {
		ctx = append(ctx, slack.NewTextBlockObject(slack.MarkdownType, notifier.MrkdwnLink(m.DashboardURL, "dashboard"), false, false))
	}
	if len(ctx) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", ctx...))
	}
	if len(blocks) > MaxBlocks {
		blocks = blocks[:MaxBlocks]
	}
	return blocks
}

// PostDigest posts a digest as one message of sections (Slack's limits kept).
func (n *Notifier) PostDigest(ctx context.Context, d *notifier.Digest) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	var blocks []slack.Block
	for _, line := range d.Text() {
		if len(blocks) == MaxBlocks {
			break
		}
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType,
			notifier.ClipMrkdwn(line, MaxSectionText), false, false), nil, nil))
	}
	text := notifier.ClipMrkdwn(notifier.Mrkdwn(d.Title), 3000)
	if n.api == nil {
		return n.verdict(slack.PostWebhookCustomHTTPContext(ctx, n.cfg.WebhookURL.Value(), n.client,
			&slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}}))
	}
	_, _, err := n.api.PostMessageContext(ctx, n.cfg.Channel, slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false))
	return n.verdict(err)
}

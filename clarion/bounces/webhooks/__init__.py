"""Provider webhooks (Amazon SES through SNS, Mailgun, SendGrid, Postmark): proven genuine by
`sns` and `signatures`, stored by `receive`, read as reports by `events`."""

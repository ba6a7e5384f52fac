module gojinn.test/guest-go

go 1.21

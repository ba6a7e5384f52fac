module gojinn.example/go-hello

go 1.21

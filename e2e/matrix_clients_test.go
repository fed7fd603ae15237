package e2e

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// The servers of the matrix, on loopback (.ci/servers starts them).
const (
	postgresAddr = "127.0.0.1:5432"
	mariadbAddr  = "127.0.0.1:3306"
	rabbitAddr   = "127.0.0.1:5672"
	natsAddr     = "127.0.0.1:4222"
	mqttAddr     = "127.0.0.1:1883"
)

// matrixSchema, matrixKey and matrixSubject name what the matrix creates
// on the shared servers, removed when it ends.
const (
	matrixSchema  = "faultline_matrix"
	matrixKey     = "faultline-matrix:k"
	matrixSubject = "faultline.matrix.echo"
	matrixQueue   = "faultline-matrix"
)

func matrixClients() []matrixClient {
	return []matrixClient{
		// PostgreSQL and MariaDB connections carry a session from their
		// handshake on: no pool-mode rows (docs/clients.md).
		{name: "pgx/v5 pgxpool", server: "PostgreSQL", upstream: postgresAddr,
			howStart: "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
			prepare:  preparePostgres, open: openPgxpool, exchanges: 1},
		{name: "database/sql + pgx stdlib", server: "PostgreSQL", upstream: postgresAddr,
			howStart: "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
			prepare:  preparePostgres, open: openPgxStdlib, exchanges: 2}, // prepare, then execute
		{name: "go-sql-driver/mysql", server: "MariaDB", upstream: mariadbAddr,
			howStart: "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
			prepare:  prepareMariaDB, open: openMySQL, exchanges: 2, ownDeadline: true}, // COM_STMT_PREPARE, then EXECUTE
		{name: "go-redis/v9", server: "Redis", upstream: redisAddr, pools: true,
			howStart: "the suite starts its own redis-server: apt-get install redis-server",
			prepare:  prepareRedis, open: openRedis, exchanges: 1, ownDeadline: true},
		{name: "net/http keep-alive", server: "nginx", upstream: nginxAddr, pools: true,
			howStart: "the suite starts its own nginx: apt-get install nginx-light",
			prepare:  func(context.Context, string) (func(), error) { return func() {}, nil }, open: openHTTP, exchanges: 1, ownDeadline: true},
		{name: "amqp091-go", server: "RabbitMQ", upstream: rabbitAddr,
			howStart: "rabbitmq-server -detached",
			prepare:  prepareRabbit, open: openAMQP, exchanges: 1},
		{name: "nats.go", server: "NATS", upstream: natsAddr,
			howStart: "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js",
			prepare:  prepareNATS, open: openNATS, exchanges: 1},
		{name: "paho.mqtt.golang", server: "Mosquitto", upstream: mqttAddr,
			howStart: "mosquitto -d -c /etc/mosquitto/mosquitto.conf",
			prepare:  func(context.Context, string) (func(), error) { return func() {}, nil }, open: openMQTT, exchanges: 1},
	}
}

// errorKind names what a call returned, in words that do not change from
// run to run (no addresses, no numbers).
func errorKind(err error) string {
	var ne net.Error
	var ae *amqp.Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, nats.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, net.ErrClosed):
		return "use of closed connection"
	case errors.Is(err, mysql.ErrInvalidConn):
		return "invalid connection (mysql.ErrInvalidConn)"
	case errors.Is(err, driver.ErrBadConn):
		return "bad connection (driver.ErrBadConn)"
	case errors.Is(err, amqp.ErrClosed):
		return "connection not open (amqp.ErrClosed)"
	case errors.As(err, &ae) && strings.Contains(ae.Reason, "connection reset"):
		return "connection reset (*amqp.Error)"
	case errors.As(err, &ae) && ae.Reason == "EOF":
		return "EOF (*amqp.Error)"
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting):
		return "nats: " + err.Error()
	case errors.Is(err, errWrongAnswer):
		return err.Error()
	}
	msg := regexp.MustCompile(`[0-9]+`).ReplaceAllString(err.Error(), "N")
	if len(msg) > 60 {
		msg = msg[:60] + "…"
	}
	return "other: " + msg
}

// errWrongAnswer is a call that got an answer, but not its own.
var errWrongAnswer = errors.New("wrong answer")

// PostgreSQL: a schema of our own with one row.

func preparePostgres(ctx context.Context, upstream string) (func(), error) {
	c, err := pgx.Connect(ctx, "postgres://postgres@"+upstream+"/test?sslmode=disable")
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	for _, q := range []string{
		"DROP SCHEMA IF EXISTS " + matrixSchema + " CASCADE",
		"CREATE SCHEMA " + matrixSchema,
		"CREATE TABLE " + matrixSchema + ".kv (k int PRIMARY KEY, v text NOT NULL)",
		"INSERT INTO " + matrixSchema + ".kv SELECT i, 'v' || i FROM generate_series(1, 100) i",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return nil, err
		}
	}
	return func() {
		if c, err := pgx.Connect(context.Background(), "postgres://postgres@"+upstream+"/test?sslmode=disable"); err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+matrixSchema+" CASCADE")
			_ = c.Close(context.Background())
		}
	}, nil
}

const pgQuery = "SELECT v FROM " + matrixSchema + ".kv WHERE k = $1"

// checkRow checks the answer to the query for key k.
func checkRow(k int, v string) error {
	if want := fmt.Sprintf("v%d", k); v != want {
		return fmt.Errorf("%w: %q for key %d", errWrongAnswer, v, k)
	}
	return nil
}

type pgxpoolSubject struct {
	p *pgxpool.Pool
	n atomic.Int64
}

func openPgxpool(addr string) (subject, error) {
	cfg, err := pgxpool.ParseConfig("postgres://postgres@" + addr + "/test?sslmode=disable&connect_timeout=2")
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 1
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	return &pgxpoolSubject{p: p}, nil
}

func (s *pgxpoolSubject) call(ctx context.Context) error {
	k := int(s.n.Add(1)%100) + 1
	var v string
	if err := s.p.QueryRow(ctx, pgQuery, k).Scan(&v); err != nil {
		return err
	}
	return checkRow(k, v)
}

func (s *pgxpoolSubject) close() { s.p.Close() }

// sqlSubject is a database/sql pool of one connection, for PostgreSQL
// (pgx stdlib) and MariaDB (go-sql-driver/mysql).
type sqlSubject struct {
	db    *sql.DB
	query string
	n     atomic.Int64
}

func openPgxStdlib(addr string) (subject, error) {
	db, err := sql.Open("pgx", "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=2")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return &sqlSubject{db: db, query: pgQuery}, nil
}

func (s *sqlSubject) call(ctx context.Context) error {
	k := int(s.n.Add(1)%100) + 1
	var v string
	if err := s.db.QueryRowContext(ctx, s.query, k).Scan(&v); err != nil {
		return err
	}
	return checkRow(k, v)
}

func (s *sqlSubject) close() { _ = s.db.Close() }

// MariaDB: a table of our own in the database test.

const mysqlTable = "test." + matrixSchema + "_kv"

func prepareMariaDB(ctx context.Context, upstream string) (func(), error) {
	db, err := sql.Open("mysql", "root@tcp("+upstream+")/test")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for _, q := range []string{
		"DROP TABLE IF EXISTS " + mysqlTable,
		"CREATE TABLE " + mysqlTable + " (k int PRIMARY KEY, v varchar(16) NOT NULL)",
		"INSERT INTO " + mysqlTable + " SELECT seq, CONCAT('v', seq) FROM seq_1_to_100",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, err
		}
	}
	return func() {
		if db, err := sql.Open("mysql", "root@tcp("+upstream+")/test"); err == nil {
			_, _ = db.Exec("DROP TABLE IF EXISTS " + mysqlTable)
			_ = db.Close()
		}
	}, nil
}

func openMySQL(addr string) (subject, error) {
	d := matrixDeadline.String()
	db, err := sql.Open("mysql", "root@tcp("+addr+")/test?timeout=2s&readTimeout="+d+"&writeTimeout="+d)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	// A text query, one round trip (no prepared statement).
	return &sqlSubject{db: db, query: "SELECT v FROM " + mysqlTable + " WHERE k = ?"}, nil
}

// Redis: a key of our own, on the suite's own redis-server.

func prepareRedis(ctx context.Context, upstream string) (func(), error) {
	c := redis.NewClient(&redis.Options{Addr: upstream, DisableIdentity: true})
	defer c.Close()
	if err := c.Set(ctx, matrixKey, "v", 0).Err(); err != nil {
		return nil, err
	}
	return func() {
		c := redis.NewClient(&redis.Options{Addr: upstream, DisableIdentity: true})
		c.Del(context.Background(), matrixKey)
		_ = c.Close()
	}, nil
}

type redisSubject struct{ c *redis.Client }

func openRedis(addr string) (subject, error) {
	// go-redis's defaults but one connection and the matrix's deadline:
	// MaxRetries 3, and it checks an idle connection before reusing it.
	return &redisSubject{c: redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, PoolSize: 1,
		ReadTimeout: matrixDeadline, WriteTimeout: matrixDeadline, DialTimeout: 2 * time.Second})}, nil
}

func (s *redisSubject) call(ctx context.Context) error {
	v, err := s.c.Get(ctx, matrixKey).Result()
	if err != nil {
		return err
	}
	if v != "v" {
		return fmt.Errorf("%w: %q", errWrongAnswer, v)
	}
	return nil
}

func (s *redisSubject) close() { _ = s.c.Close() }

// HTTP: GET /p/N from nginx answers "body N", so a reply that belongs
// to another request is caught.

type httpSubject struct {
	base string
	tr   *http.Transport
	c    *http.Client
	n    atomic.Int64
}

func openHTTP(addr string) (subject, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, ResponseHeaderTimeout: matrixDeadline}
	return &httpSubject{base: "http://" + addr, tr: tr, c: &http.Client{Transport: tr}}, nil
}

func (s *httpSubject) call(ctx context.Context) error {
	k := s.n.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/p/%d", s.base, k), nil)
	if err != nil {
		return err
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("body %d\n", k); string(b) != want {
		return fmt.Errorf("%w: %q for /p/%d", errWrongAnswer, b, k)
	}
	return nil
}

func (s *httpSubject) close() { s.tr.CloseIdleConnections() }

// RabbitMQ: a queue of our own; a call is a passive declare of it (one
// RPC on the channel).

func prepareRabbit(_ context.Context, upstream string) (func(), error) {
	conn, err := amqp.Dial("amqp://guest:guest@" + upstream + "/")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if _, err := ch.QueueDeclare(matrixQueue, false, false, false, false, nil); err != nil {
		return nil, err
	}
	return func() {
		if conn, err := amqp.Dial("amqp://guest:guest@" + upstream + "/"); err == nil {
			if ch, err := conn.Channel(); err == nil {
				_, _ = ch.QueueDelete(matrixQueue, false, false, false)
			}
			_ = conn.Close()
		}
	}, nil
}

type amqpSubject struct {
	conn *amqp.Connection
	ch   *amqp.Channel
}

func openAMQP(addr string) (subject, error) {
	conn, err := amqp.DialConfig("amqp://guest:guest@"+addr+"/", amqp.Config{Heartbeat: 10 * time.Second, Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &amqpSubject{conn: conn, ch: ch}, nil
}

// call declares the queue passively. amqp091-go has no deadline of its
// own: the call gives up at ctx's, as an application would.
func (s *amqpSubject) call(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		_, err := s.ch.QueueDeclarePassive(matrixQueue, false, false, false, false, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *amqpSubject) close() { _ = s.conn.Close() }

// NATS: a request to a responder on a direct connection.

func prepareNATS(_ context.Context, upstream string) (func(), error) {
	nc, err := nats.Connect("nats://" + upstream)
	if err != nil {
		return nil, err
	}
	if _, err := nc.Subscribe(matrixSubject, func(m *nats.Msg) { _ = m.Respond(append([]byte("re: "), m.Data...)) }); err != nil {
		nc.Close()
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return nc.Close, nil
}

type natsSubject struct {
	nc *nats.Conn
	n  atomic.Int64
}

func openNATS(addr string) (subject, error) {
	nc, err := nats.Connect("nats://"+addr, nats.Timeout(2*time.Second), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		return nil, err
	}
	return &natsSubject{nc: nc}, nil
}

func (s *natsSubject) call(ctx context.Context) error {
	body := fmt.Sprint(s.n.Add(1))
	m, err := s.nc.RequestWithContext(ctx, matrixSubject, []byte(body))
	if err != nil {
		return err
	}
	if string(m.Data) != "re: "+body {
		return fmt.Errorf("%w: %q for %q", errWrongAnswer, m.Data, body)
	}
	return nil
}

func (s *natsSubject) close() { s.nc.Close() }

// MQTT: a QoS 1 publish, answered by the broker's PUBACK.

type mqttSubject struct{ c mqtt.Client }

var mqttClientN atomic.Int64

func openMQTT(addr string) (subject, error) {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("faultline-matrix-%d-%d", os.Getpid(), mqttClientN.Add(1))).
		SetAutoReconnect(true).SetConnectRetry(false).SetMaxReconnectInterval(200 * time.Millisecond).
		SetConnectTimeout(2 * time.Second).SetWriteTimeout(matrixDeadline).SetKeepAlive(30 * time.Second).
		SetCleanSession(true)
	c := mqtt.NewClient(opts)
	if t := c.Connect(); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
		c.Disconnect(0)
		if t.Error() != nil {
			return nil, t.Error()
		}
		return nil, errors.New("mqtt: connect timed out")
	}
	return &mqttSubject{c: c}, nil
}

func (s *mqttSubject) call(ctx context.Context) error {
	t := s.c.Publish("faultline/matrix", 1, false, []byte("x"))
	d, _ := ctx.Deadline()
	if !t.WaitTimeout(time.Until(d)) {
		return context.DeadlineExceeded
	}
	if err := t.Error(); err != nil {
		return err
	}
	if !s.c.IsConnectionOpen() {
		return errors.New("mqtt: not connected")
	}
	return nil
}

func (s *mqttSubject) close() { s.c.Disconnect(100) }

// nginx, started by the suite on a free port.

var (
	nginxAddr string
	nginxProc *exec.Cmd
	nginxDir  string
)

func startNginx() {
	bin := "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		return // its rows skip: nginxAddr answers nothing
	}
	nginxDir = must(os.MkdirTemp("", "faultline-nginx-"))
	port := freePort()
	nginxAddr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s;
	proxy_temp_path %[1]s;
	fastcgi_temp_path %[1]s;
	uwsgi_temp_path %[1]s;
	scgi_temp_path %[1]s;
	keepalive_timeout 75s;
	keepalive_requests 100000;
	server {
		listen %[2]s;
		location ~ ^/p/([0-9]+)$ { default_type text/plain; return 200 "body $1\n"; }
	}
}
`, nginxDir, nginxAddr)
	path := nginxDir + "/nginx.conf"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		panic(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", nginxDir, "-e", nginxDir+"/error.log")
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	nginxProc = cmd
	deadline := time.Now().Add(10 * time.Second)
	for !serverAnswers(nginxAddr) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

func stopNginx() {
	if nginxProc != nil {
		_ = nginxProc.Process.Signal(syscall.SIGTERM)
		_ = nginxProc.Wait()
	}
	if nginxDir != "" {
		_ = os.RemoveAll(nginxDir)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

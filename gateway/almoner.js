// The gateway's own /ready, in njs: plain nginx cannot combine the answers of several upstreams.
//
// Asks every routed service's /ready at once, through the internal locations /.almoner/ready/<service>
// (nginx.conf.template generates one per service, with short timeouts), and answers 200 when all are 200,
// otherwise 503 application/problem+json with code not_ready naming the services that are not ready.
// The services come from $almoner_services, which scripts/gen-gateway fills from ALMONER_SERVICES.
//
// Written for njs 0.7 (Debian 12's libnginx-mod-http-js) and later (the official nginx image): promises,
// no newer syntax.

function ready(r) {
    var services = r.variables.almoner_services.split(' ').filter(function (name) {
        return name.length > 0;
    });
    var asks = services.map(function (service) {
        return r.subrequest('/.almoner/ready/' + service, { method: 'GET' }).then(
            function (reply) {
                return reply.status;
            },
            function () {
                return 0;
            }
        );
    });
    Promise.all(asks).then(function (statuses) {
        var answers = {};
        var notReady = [];
        services.forEach(function (service, i) {
            answers[service] = statuses[i] === 200 ? 'ready' : 'not_ready';
            if (statuses[i] !== 200) {
                notReady.push(service);
            }
        });
        if (notReady.length === 0) {
            r.headersOut['Content-Type'] = 'application/json';
            r.return(200, JSON.stringify({ status: 'ready', services: answers }));
            return;
        }
        r.headersOut['Content-Type'] = 'application/problem+json';
        r.return(
            503,
            JSON.stringify({
                type: 'https://almoner.org/problems/not_ready',
                title: 'A dependency is unavailable',
                status: 503,
                code: 'not_ready',
                detail: 'Not ready: ' + notReady.join(', ') + '.',
                not_ready: notReady,
                services: answers,
                request_id: r.variables.almoner_request_id,
            })
        );
    });
}

// "1" when the request is a presigned S3 link (SigV4 query: X-Amz-Date=YYYYMMDDTHHMMSSZ, X-Amz-Expires=seconds)
// past its expiry, else "". Anything it cannot read is left for S3 to judge.
function s3LinkExpired(r) {
    var date = r.args['X-Amz-Date'];
    var expires = parseInt(r.args['X-Amz-Expires'], 10);
    if (typeof date !== 'string' || isNaN(expires)) {
        return '';
    }
    var m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    if (!m) {
        return '';
    }
    var signed = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
    return Date.now() > signed + expires * 1000 ? '1' : '';
}

export default { ready, s3LinkExpired };

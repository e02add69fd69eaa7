// The benchmark's peer: panva's oidc-provider issuing client_credentials tokens as RFC 9068
// JWT access tokens signed ES256, as a user would configure it in place of keygate.
// Started by keygate-bench (`--peer`): PORT, CLIENT_ID and CLIENT_SECRET come from it.
import { generateKeyPairSync, randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT || 0);
const clientId = process.env.CLIENT_ID || 'bench-client';
const clientSecret = process.env.CLIENT_SECRET;
if (!port || !clientSecret) {
  console.error('PORT and CLIENT_SECRET are required');
  process.exit(2);
}

const issuer = `http://127.0.0.1:${port}`;
const resource = 'urn:keygate-bench:api';
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: randomUUID() };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // Only an EC key is configured: the default (RS256) would make the client invalid.
      id_token_signed_response_alg: 'ES256',
      scope: 'invoices:read',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['invoices:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'invoices:read',
        audience: resource,
        accessTokenTTL: 900,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
// Errors answered to clients (401 and the like) are not worth a line each under load.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

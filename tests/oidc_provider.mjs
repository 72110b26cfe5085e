// A real OpenID provider for the single sign-on tests: panva's oidc-provider (certified), with
// its development sign-in and consent pages, one confidential client and the test's accounts.
//
//   node tests/oidc_provider.mjs <port> <redirect-uri> <accounts-json>
//
// accounts-json maps an account id (what the sign-in page's "login" field takes) to its claims,
// e.g. {"alice": {"email": "Alice@Example.test", "email_verified": true}}.  Prints one line
// "ready <issuer>" once it listens; stops on SIGTERM.
import Provider from "oidc-provider";

const [port, redirectUri, accountsJson] = process.argv.slice(2);
const accounts = JSON.parse(accountsJson);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "pulse-test",
      client_secret: "pulse-test-client-secret-0123456789",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  // PKCE for every client, not only public ones: the relying party must send it.
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
});
// Over plain http on 127.0.0.1 (the test's own machine) the cookies cannot be Secure.
provider.proxy = false;

const server = provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));

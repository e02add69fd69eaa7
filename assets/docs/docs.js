// Renders keygate's OpenAPI document with Swagger UI. Every URL is relative to the page, so
// the reference works under whatever host and path prefix a proxy serves keygate.
"use strict";
window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  // No badge from the public validator: the page asks nothing of any other host.
  validatorUrl: null,
});

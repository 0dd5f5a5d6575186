//! Where the REST API lives: its versioned prefix, the unversioned prefix its aliases keep, and
//! the route a path names whichever prefix it came by. Apart from the router ([`super::api`])
//! because what a request needs (`access`) and costs (`limits`) is decided on it too, before
//! any route runs.

/// Where the current version of the API lives.
pub const PREFIX: &str = "/api/v1";
/// Where the API's routes were before it was versioned, still served as aliases.
pub const ALIAS_PREFIX: &str = "/api";
/// The OpenAPI document's path.
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

/// The route a path of the API names, whichever prefix it came by: `executions/7/pause` for
/// both `/api/v1/executions/7/pause` and `/api/executions/7/pause`, so an alias is never
/// cheaper or more open than its versioned path.
pub fn route_of(path: &str) -> Option<&str> {
    path.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .or_else(|| path.strip_prefix("/api/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_prefixes_name_the_same_route() {
        assert_eq!(
            route_of("/api/v1/executions/7/pause"),
            Some("executions/7/pause")
        );
        assert_eq!(
            route_of("/api/executions/7/pause"),
            Some("executions/7/pause")
        );
        assert_eq!(route_of("/api/v1/events"), Some("events"));
        assert_eq!(route_of("/runs/7"), None);
        assert_eq!(route_of("/api"), None);
    }
}

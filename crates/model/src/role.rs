//! Who someone is to sealwatch: the roles of the brief (§9 of the WCO report). What each role
//! may see and do is the permission matrix (docs/security.md, with the security work).

use serde::{Deserialize, Serialize};

/// A role held by a user or an API token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Administrator,
    /// The supervision centre's lead.
    Supervisor,
    /// A supervision-centre officer.
    Officer,
    Patrol,
    /// An officer at a departure, destination or border office.
    OfficeOfficer,
    /// The operator of a station (device stock, sealing and unsealing on site).
    SiteOperator,
    Carrier,
    Forwarder,
    Consignor,
    /// Read-only, including the audit trail.
    Auditor,
    /// Another customs administration (federation).
    PartnerCustoms,
    /// A device gateway or a vendor cloud pushing reports.
    Gateway,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Administrator,
        Role::Supervisor,
        Role::Officer,
        Role::Patrol,
        Role::OfficeOfficer,
        Role::SiteOperator,
        Role::Carrier,
        Role::Forwarder,
        Role::Consignor,
        Role::Auditor,
        Role::PartnerCustoms,
        Role::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Supervisor => "supervisor",
            Role::Officer => "officer",
            Role::Patrol => "patrol",
            Role::OfficeOfficer => "office_officer",
            Role::SiteOperator => "site_operator",
            Role::Carrier => "carrier",
            Role::Forwarder => "forwarder",
            Role::Consignor => "consignor",
            Role::Auditor => "auditor",
            Role::PartnerCustoms => "partner_customs",
            Role::Gateway => "gateway",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {s:?}; one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_and_parse_back() {
        for r in Role::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!(
            "root"
                .parse::<Role>()
                .unwrap_err()
                .contains("administrator")
        );
    }
}

//! Resolution of a `--user` value against a rootfs's user database.
//!
//! The database is the text of the rootfs's `/etc/passwd` and `/etc/group` (passwd(5) and
//! group(5) formats), read by the caller; this module does no I/O. The forms accepted are
//! podman's `--user`: `name`, `uid`, `name:group`, `uid:gid`, `uid:group`, `name:gid`.

use crate::SpecError;

/// One line of passwd(5): `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One line of group(5): `name:password:gid:member,member`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// A rootfs's user and group database, parsed from the text of its `/etc/passwd` and
/// `/etc/group`.
///
/// Malformed lines (too few fields, a non-numeric id) and comment lines are skipped, as glibc's
/// files backend does.
///
/// A file that exists but cannot be read ([`UserDb::passwd_unreadable`],
/// [`UserDb::group_unreadable`]) fails only the lookups of names in it, as buildah does:
/// without `/etc/passwd`, a numeric uid (root by default) gets gid 0 or the given gid, no
/// other supplementary group, and home `/`; without `/etc/group`, a user gets no supplementary
/// group beyond its primary gid; a name to look up in the unreadable file is an error naming
/// it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDb {
    passwd: Vec<PasswdEntry>,
    group: Vec<GroupEntry>,
    passwd_error: Option<String>,
    group_error: Option<String>,
}

/// The identity a process runs as, with the values that go into the spec's `process.user` and
/// the `HOME` default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedUser {
    /// The user id (runtime-spec `process.user.uid`).
    pub uid: u32,
    /// The primary group id (runtime-spec `process.user.gid`).
    pub gid: u32,
    /// Supplementary group ids, sorted and without duplicates: the primary gid and every group
    /// whose member list names the user (runtime-spec `process.user.additionalGids`).
    pub additional_gids: Vec<u32>,
    /// The home directory from the passwd entry, `/` when the user has none.
    pub home: String,
}

impl UserDb {
    /// Parses the text of `/etc/passwd` and `/etc/group`. Either may be empty (a rootfs without
    /// the file).
    pub fn parse(passwd: &str, group: &str) -> Self {
        let passwd = passwd
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() < 7 {
                    return None;
                }
                Some(PasswdEntry {
                    name: f[0].to_owned(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f[5].to_owned(),
                })
            })
            .collect();
        let group = group
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() < 4 {
                    return None;
                }
                Some(GroupEntry {
                    name: f[0].to_owned(),
                    gid: f[2].parse().ok()?,
                    members: f[3]
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .collect();
        Self {
            passwd,
            group,
            passwd_error: None,
            group_error: None,
        }
    }

    /// Marks `/etc/passwd` as existing but unreadable, for `reason` (`not a regular file (a
    /// FIFO)`): its entries are dropped, and a user name is an error naming the file.
    #[must_use]
    pub fn passwd_unreadable(mut self, reason: impl Into<String>) -> Self {
        self.passwd.clear();
        self.passwd_error = Some(reason.into());
        self
    }

    /// Marks `/etc/group` as existing but unreadable, for `reason`: its entries are dropped,
    /// and a group name is an error naming the file.
    #[must_use]
    pub fn group_unreadable(mut self, reason: impl Into<String>) -> Self {
        self.group.clear();
        self.group_error = Some(reason.into());
        self
    }

    /// Whether the passwd database has an entry with the uid `uid`.
    pub fn has_uid(&self, uid: u32) -> bool {
        self.passwd.iter().any(|e| e.uid == uid)
    }

    /// Whether the group database has an entry with the gid `gid`.
    pub fn has_gid(&self, gid: u32) -> bool {
        self.group.iter().any(|e| e.gid == gid)
    }

    /// Resolves a `--user` value (`None`: root).
    ///
    /// A name is looked up in passwd; a numeric uid is used as it is, with its passwd entry when
    /// there is one (else gid 0 and home `/`). An explicit group (name or gid) replaces the
    /// primary gid.
    ///
    /// # Errors
    /// [`SpecError::UnknownUser`] / [`SpecError::UnknownGroup`] for a name that the database
    /// lacks; [`SpecError::InvalidUser`] for an empty user or group part or a uid above
    /// [`MAX_ID`]; [`SpecError::InvalidGroup`] for a gid above it.
    pub fn resolve(&self, user: Option<&str>) -> Result<ResolvedUser, SpecError> {
        let spec = user.unwrap_or("0");
        let (user_part, group_part) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user_part.is_empty() {
            return Err(SpecError::InvalidUser(spec.to_owned(), "empty user"));
        }
        let entry = match user_part.parse::<u32>() {
            Ok(uid) if uid > MAX_ID => {
                return Err(SpecError::InvalidUser(spec.to_owned(), ID_RANGE))
            }
            Ok(uid) => self
                .passwd
                .iter()
                .find(|e| e.uid == uid)
                .cloned()
                .or(Some(PasswdEntry {
                    name: String::new(),
                    uid,
                    gid: 0,
                    home: "/".to_owned(),
                })),
            Err(_) if user_part.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(SpecError::InvalidUser(spec.to_owned(), ID_RANGE))
            }
            Err(_) => {
                if let Some(reason) = &self.passwd_error {
                    return Err(SpecError::UserDbUnreadable {
                        what: "user",
                        name: user_part.to_owned(),
                        file: "/etc/passwd",
                        reason: reason.clone(),
                    });
                }
                self.passwd.iter().find(|e| e.name == user_part).cloned()
            }
        }
        .ok_or_else(|| SpecError::UnknownUser(user_part.to_owned()))?;

        let gid = match group_part {
            None => entry.gid,
            Some("") => return Err(SpecError::InvalidUser(spec.to_owned(), "empty group")),
            Some(g) => self.group_id(g)?,
        };
        let mut additional_gids = vec![gid];
        if !entry.name.is_empty() {
            additional_gids.extend(
                self.group
                    .iter()
                    .filter(|g| g.members.contains(&entry.name))
                    .map(|g| g.gid),
            );
        }
        additional_gids.sort_unstable();
        additional_gids.dedup();
        let home = if entry.home.is_empty() {
            "/".to_owned()
        } else {
            entry.home
        };
        Ok(ResolvedUser {
            uid: entry.uid,
            gid,
            additional_gids,
            home,
        })
    }
}

/// The largest uid or gid a run may use: 2 147 483 647 (`i32::MAX`). runc refuses larger ids
/// when it sets up the process's user ("uids and gids must be in range 0-2147483647"), after
/// the container was created; the kernel reserves 4 294 967 295 (`(uid_t)-1`) to mean "leave
/// unchanged".
pub const MAX_ID: u32 = i32::MAX as u32;

/// The reason given for a uid or gid above [`MAX_ID`].
const ID_RANGE: &str = "uids and gids must be in range 0-2147483647";

impl UserDb {
    /// The gid of a group given by name (looked up in the rootfs's `/etc/group`) or as a
    /// number: a `--group-add` value, or the group part of `--user`.
    ///
    /// # Errors
    /// [`SpecError::UnknownGroup`] for a name that the database lacks (or an empty one);
    /// [`SpecError::InvalidGroup`] for a gid above [`MAX_ID`].
    pub fn group_id(&self, group: &str) -> Result<u32, SpecError> {
        let digits = !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit());
        match group.parse::<u32>() {
            Ok(gid) if gid > MAX_ID => Err(SpecError::InvalidGroup(group.to_owned(), ID_RANGE)),
            Ok(gid) => Ok(gid),
            Err(_) if digits => Err(SpecError::InvalidGroup(group.to_owned(), ID_RANGE)),
            Err(_) => match &self.group_error {
                Some(reason) if !group.is_empty() => Err(SpecError::UserDbUnreadable {
                    what: "group",
                    name: group.to_owned(),
                    file: "/etc/group",
                    reason: reason.clone(),
                }),
                _ => self
                    .group
                    .iter()
                    .find(|e| e.name == group && !group.is_empty())
                    .map(|e| e.gid)
                    .ok_or_else(|| SpecError::UnknownGroup(group.to_owned())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\n\
                          app:x:1000:1000:app:/home/app:/bin/sh\nnohome:x:1001:1001:::/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app\nstaff:x:50:other,app\n";

    fn db() -> UserDb {
        UserDb::parse(PASSWD, GROUP)
    }

    #[test]
    fn default_is_root() {
        let u = db().resolve(None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.additional_gids, [0]);
    }

    #[test]
    fn name_gets_primary_and_member_groups() {
        let u = db().resolve(Some("app")).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.additional_gids, [10, 50, 1000]);
    }

    #[test]
    fn numeric_uid_without_entry() {
        let u = db().resolve(Some("4242")).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert_eq!(u.additional_gids, [0]);
    }

    #[test]
    fn numeric_uid_with_entry_uses_it() {
        let u = db().resolve(Some("1000")).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
    }

    #[test]
    fn group_forms() {
        assert_eq!(db().resolve(Some("app:wheel")).unwrap().gid, 10);
        assert_eq!(db().resolve(Some("app:77")).unwrap().gid, 77);
        assert_eq!(db().resolve(Some("4242:wheel")).unwrap().gid, 10);
        assert_eq!(db().resolve(Some("4242:5")).unwrap().gid, 5);
        assert_eq!(db().resolve(Some("nohome")).unwrap().home, "/");
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        assert_eq!(
            db().resolve(Some("nobody-here")).unwrap_err().to_string(),
            r#"unknown user "nobody-here""#
        );
        assert_eq!(
            db().resolve(Some("app:nogroup")).unwrap_err().to_string(),
            r#"unknown group "nogroup""#
        );
        assert!(matches!(
            db().resolve(Some(":5")),
            Err(SpecError::InvalidUser(..))
        ));
        assert!(matches!(
            db().resolve(Some("app:")),
            Err(SpecError::InvalidUser(..))
        ));
    }

    #[test]
    fn unreadable_files_fail_only_name_lookups() {
        let no_passwd = db().passwd_unreadable("not a regular file (a FIFO)");
        let root = no_passwd.resolve(None).unwrap();
        assert_eq!(
            (root.uid, root.gid, root.additional_gids, root.home.as_str()),
            (0, 0, vec![0], "/")
        );
        let u = no_passwd.resolve(Some("1000:wheel")).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids, u.home.as_str()),
            (1000, 10, vec![10], "/")
        );
        assert_eq!(
            no_passwd.resolve(Some("app")).unwrap_err().to_string(),
            r#"unknown user "app": the rootfs's /etc/passwd cannot be read: not a regular file (a FIFO)"#
        );

        let no_group = db().group_unreadable("larger than 16 MiB");
        let u = no_group.resolve(Some("app")).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids, u.home.as_str()),
            (1000, 1000, vec![1000], "/home/app")
        );
        assert_eq!(no_group.resolve(Some("0:5")).unwrap().additional_gids, [5]);
        assert_eq!(
            no_group.resolve(Some("app:wheel")).unwrap_err().to_string(),
            r#"unknown group "wheel": the rootfs's /etc/group cannot be read: larger than 16 MiB"#
        );
        assert_eq!(
            no_group.group_id("wheel").unwrap_err().to_string(),
            r#"unknown group "wheel": the rootfs's /etc/group cannot be read: larger than 16 MiB"#
        );
        assert_eq!(no_group.group_id("10").unwrap(), 10);
    }

    #[test]
    fn group_ids() {
        assert_eq!(db().group_id("wheel").unwrap(), 10);
        assert_eq!(db().group_id("77").unwrap(), 77);
        assert_eq!(
            db().group_id("nogroup").unwrap_err().to_string(),
            r#"unknown group "nogroup""#
        );
        assert!(db().group_id("").is_err());
    }

    #[test]
    fn ids_above_i32_max_are_refused_naming_the_value() {
        let err = |r: Result<ResolvedUser, SpecError>| r.unwrap_err().to_string();
        assert_eq!(
            err(db().resolve(Some("4294967295"))),
            r#"invalid user "4294967295": uids and gids must be in range 0-2147483647"#
        );
        assert_eq!(
            err(db().resolve(Some("app:2147483648"))),
            r#"invalid group "2147483648": uids and gids must be in range 0-2147483647"#
        );
        assert_eq!(
            db().group_id("4294967295").unwrap_err().to_string(),
            r#"invalid group "4294967295": uids and gids must be in range 0-2147483647"#
        );
        assert_eq!(
            err(db().resolve(Some("99999999999999999999"))),
            r#"invalid user "99999999999999999999": uids and gids must be in range 0-2147483647"#
        );
        assert_eq!(
            db().group_id("4294967296").unwrap_err().to_string(),
            r#"invalid group "4294967296": uids and gids must be in range 0-2147483647"#
        );
        let top = db().resolve(Some("2147483647:2147483647")).unwrap();
        assert_eq!((top.uid, top.gid), (2_147_483_647, 2_147_483_647));
    }

    proptest! {
        #[test]
        fn user_forms_round_trip(uid in 0..=MAX_ID, gid in 0..=MAX_ID) {
            let u = UserDb::default().resolve(Some(&format!("{uid}:{gid}"))).unwrap();
            prop_assert_eq!((u.uid, u.gid, u.home.as_str()), (uid, gid, "/"));
            prop_assert_eq!(u.additional_gids, vec![gid]);
        }

        #[test]
        fn unknown_names_are_refused(name in "[a-z]{1,8}") {
            prop_assume!(!["root", "app", "nohome"].contains(&name.as_str()));
            prop_assert!(matches!(db().resolve(Some(&name)), Err(SpecError::UnknownUser(_))));
            let with_group = format!("app:{name}");
            prop_assume!(!["root", "app", "wheel", "staff"].contains(&name.as_str()));
            prop_assert!(matches!(db().resolve(Some(&with_group)), Err(SpecError::UnknownGroup(_))));
        }

        #[test]
        fn parse_and_resolve_never_panic(p in ".{0,200}", g in ".{0,200}", u in ".{0,20}") {
            let db = UserDb::parse(&p, &g);
            let _ = db.resolve(Some(&u));
        }

        #[test]
        fn any_uid_resolves_to_itself(uid in 0..=MAX_ID) {
            let u = UserDb::default().resolve(Some(&uid.to_string())).unwrap();
            prop_assert_eq!(u.uid, uid);
        }
    }
}
